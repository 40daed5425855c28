// Preloaded into an MCP server that serves HTTP (`node --import ./loopback.mjs SERVER`):
// whatever port it asks for, it listens on 127.0.0.1 only, on a free port, and says which
// on stderr ("listening on 127.0.0.1:PORT"), so tests can start it without exposing it.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const callback = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
  this.once("listening", () => {
    const { address, port } = this.address();
    process.stderr.write(`listening on ${address}:${port}\n`);
  });
  return listen.call(this, 0, "127.0.0.1", callback);
};
