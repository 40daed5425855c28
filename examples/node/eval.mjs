// Evaluates Python from Node through the transpiled component (`npm run transpile` first).
//
//   node eval.mjs "print('hi')" "6 * 7"     each argument evaluated, its outcome printed
//   node eval.mjs --corpus FILE.json         every snippet of a corpus, as one JSON array
//
// One transpiled component is one instance, so successive evaluations share state, as in a
// pyeval Session.
import { readFileSync } from 'node:fs';
import { evaluator } from './generated/pyeval.js';

/// The fields hosts are compared on: stdout, the value, and the error's type name.
function summary(outcome) {
  return {
    stdout: outcome.stdout,
    value: outcome.value ?? null,
    error: outcome.error ? outcome.error.typeName : null,
  };
}

const args = process.argv.slice(2);
if (args[0] === '--corpus') {
  const corpus = JSON.parse(readFileSync(args[1], 'utf8'));
  console.log(JSON.stringify(corpus.map((snippet) => summary(evaluator.eval(snippet.code)))));
} else {
  for (const code of args) {
    console.log(JSON.stringify(evaluator.eval(code)));
  }
}
