"""Runs the guide's curl, Python and Node.js examples (from the live server's /guide.md, as the page shows
them) against that server, so the documented code cannot rot. Exits non-zero on any failure.

Usage: examples.py BASE_URL API_KEY
"""
import re
import subprocess
import sys
import urllib.request

EXAMPLE_BASE = "http://127.0.0.1:8080"
EXAMPLE_KEY = "sk_your_key"


def examples(guide: str) -> dict[str, str]:
    section = next(s for s in re.split(r"^## ", guide, flags=re.M) if s.startswith("代码示例"))
    found = {}
    for part in re.split(r"^### ", section, flags=re.M)[1:]:
        title = part.split("\n", 1)[0].strip()
        code = re.search(r"```[a-z]*\n(.*?)```", part, re.S)
        if code:
            found[title] = code.group(1)
    return found


def run(name: str, argv: list[str], code: str, must_contain: list[str]) -> bool:
    result = subprocess.run(argv, input=code, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    missing = [needle for needle in must_contain if needle not in output]
    ok = result.returncode == 0 and not missing
    print(f"{'ok' if ok else 'FAILED'}: {name} example (exit {result.returncode})")
    if not ok:
        print(f"  missing {missing}\n  output:\n{output}")
    return ok


def main() -> int:
    base, key = sys.argv[1], sys.argv[2]
    guide = urllib.request.urlopen(f"{base}/guide.md").read().decode()
    blocks = {title: code.replace(EXAMPLE_BASE, base).replace(EXAMPLE_KEY, key)
              for title, code in examples(guide).items()}
    node = "Node.js 18+（fetch + ReadableStream）"
    assert {"curl", "Python（httpx，异步，流式 SSE）", node} <= blocks.keys(), blocks.keys()
    results = [
        run("curl", ["bash", "-euo", "pipefail"], blocks["curl"],
            ["job: ", "event: result", "event: done", '"status":"done"']),
        run("Python", [sys.executable, "-"], blocks["Python（httpx，异步，流式 SSE）"],
            ["job ", "quark valid all_checks_passed", "done {"]),
        run("Node.js", ["node", "-"], blocks[node],
            ["job ", "quark valid all_checks_passed", "baidu valid all_checks_passed", "done {"]),
    ]
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
