"""A chat-bot's evaluation loop: each message that holds a ```python block gets the block
run in that conversation's own session, and the reply is what the code printed, its value
or its error. One message per line on stdin, as `conversation-id: text`; `\\n` stands for a
line break inside a message.

    printf 'alice: ```python\\nx = 6 * 7\\nx\\n```\\n' | python examples/python/chatbot.py
"""

import re
import sys

import pyeval

CODE_BLOCK = re.compile(r"```(?:python|py)?\n(.*?)```", re.S)
# Generous for a chat, small for a machine: 1 s, 64 MiB and 200 M fuel per message.
LIMITS = {"timeout": 1.0, "memory": 64 << 20, "fuel": 200_000_000, "max_output": 4000}


def reply(sessions, evaluator, conversation, text):
    match = CODE_BLOCK.search(text)
    if match is None:
        return "(no code block)"
    session = sessions.get(conversation)
    if session is None:
        session = sessions[conversation] = evaluator.session(**LIMITS)
    try:
        outcome = session.eval(match.group(1))
    except pyeval.SessionEnded:
        del sessions[conversation]
        return reply(sessions, evaluator, conversation, text)
    except pyeval.EvalError as stopped:
        # The session is spent; the next message starts a fresh one.
        del sessions[conversation]
        return f"stopped: {stopped}"
    parts = [outcome.stdout.rstrip("\n")] if outcome.stdout else []
    if outcome.error is not None:
        parts.append(f"{outcome.error.type_name}: {outcome.error.message}")
    elif outcome.value is not None:
        parts.append(outcome.value)
    return "\n".join(parts) or "(no output)"


def main():
    evaluator = pyeval.Evaluator()
    sessions = {}
    for line in sys.stdin:
        conversation, _, text = line.rstrip("\n").partition(": ")
        answer = reply(sessions, evaluator, conversation, text.replace("\\n", "\n"))
        print(f"{conversation}> {answer}", flush=True)


if __name__ == "__main__":
    main()
