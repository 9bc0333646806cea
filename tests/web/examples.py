"""Runs the guide's curl, Python and Node.js examples (from the live server's /guide.md, as the page shows
them) against that server, so the documented code cannot rot. Exits non-zero on any failure.

Also sends every request-body example of the OpenAPI document (what Swagger UI's "Try it out"
fills in) and checks that the answer is one the document lists for that operation, and never a
400: an example must be a valid request.

Usage: examples.py BASE_URL API_KEY ADMIN_TOKEN
"""
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import httpx

EXAMPLE_BASE = "http://127.0.0.1:8080"
EXAMPLE_KEY = "sk_your_key"
# The guide's webhook URL; the examples post to a receiver started here instead.
EXAMPLE_HOOK = "https://hooks.example.com/panlink"


def start_receiver() -> tuple[str, list]:
    """A loopback webhook receiver that answers 204 and keeps every body it gets."""
    import http.server
    import threading
    bodies: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            bodies.append((self.headers.get("X-Panlink-Signature", ""), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook", bodies


def examples(guide: str) -> dict[str, str]:
    section = next(s for s in re.split(r"^## ", guide, flags=re.M) if s.startswith("代码示例"))
    found = {}
    for part in re.split(r"^### ", section, flags=re.M)[1:]:
        title = part.split("\n", 1)[0].strip()
        code = re.search(r"```[a-z]*\n(.*?)```", part, re.S)
        if code:
            found[title] = code.group(1)
    return found


OUTPUTS: dict[str, str] = {}


def run(name: str, argv: list[str], code: str, must_contain: list[str]) -> bool:
    result = subprocess.run(argv, input=code, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    OUTPUTS[name] = output
    missing = [needle for needle in must_contain if needle not in output]
    ok = result.returncode == 0 and not missing
    print(f"{'ok' if ok else 'FAILED'}: {name} example (exit {result.returncode})")
    if not ok:
        print(f"  missing {missing}\n  output:\n{output}")
    return ok


def openapi_examples(base: str, key: str, admin_token: str) -> bool:
    spec = json.loads(urllib.request.urlopen(f"{base}/openapi.json").read())
    ok = True
    sent = 0
    headers = {"X-API-Key": key, "Authorization": f"Bearer {admin_token}"}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody") if isinstance(op, dict) else None
            if not body:
                continue
            url = path
            for param in item.get("parameters", []) + op.get("parameters", []):
                if param.get("in") == "path":
                    url = url.replace("{" + param["name"] + "}", str(param["example"]))
            for content_type, content in body["content"].items():
                example = content.get("example")
                if example is None:
                    print(f"FAILED: {method.upper()} {path} has no request example")
                    ok = False
                    continue
                if content_type.endswith("urlencoded"):
                    data = urllib.parse.urlencode(example)
                elif content_type.startswith("text/"):
                    data = example  # a CSV file, say: sent as written
                else:
                    data = json.dumps(example)
                answer = httpx.request(method.upper(), base + url, content=data.encode(),
                                       headers={**headers, "Content-Type": content_type}, timeout=30)
                sent += 1
                documented = answer.status_code in {int(code) for code in op["responses"]}
                if answer.status_code == 400 or not documented:
                    print(f"FAILED: {method.upper()} {url} with its example: {answer.status_code} "
                          f"(documented: {list(op['responses'])}) {answer.text[:300]}")
                    ok = False
    print(f"{'ok' if ok else 'FAILED'}: {sent} request examples of the OpenAPI document")
    return ok


def signature_example(guide: str, received: list) -> bool:
    """The guide's Python signature check, run on what the receiver got from the monitors
    example (its secret is in that example's output): every delivery verifies, a changed body
    does not."""
    section = guide.split("### 投递的格式与签名", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    secret = re.search(r"secret: (whsec_\w+)", OUTPUTS.get("curl monitors and webhooks", ""))
    pings = [(sig, body) for sig, body in received if b'"type":"ping"' in body]
    if not secret or not pings:
        print(f"FAILED: signature example: secret {bool(secret)}, pings received {len(pings)}")
        return False
    scope: dict = {}
    exec(code, scope)
    verify = scope["verify"]
    ok = all(verify(secret.group(1), sig, body) for sig, body in pings)
    ok = ok and not verify(secret.group(1), pings[0][0], pings[0][1] + b" ")
    print(f"{'ok' if ok else 'FAILED'}: the guide's Python signature check on {len(pings)} deliveries")
    # The PHP function, the same way (the snippet's request handling after it is left out).
    php = re.search(r"```php\n(.*?)```", section, re.S).group(1).split("$body = file_get_contents")[0]
    php += "\necho panlink_verify(getenv('S'), getenv('SIG'), base64_decode(getenv('BODY'))) ? 'valid' : 'invalid';\n"
    import base64

    def php_verify(sig: str, body: bytes) -> str:
        env = {"PATH": "/usr/bin:/bin", "S": secret.group(1), "SIG": sig, "BODY": base64.b64encode(body).decode()}
        return subprocess.run(["php"], input=php, capture_output=True, text=True, env=env, timeout=30).stdout.strip()

    php_ok = all(php_verify(sig, body) == "valid" for sig, body in pings)
    php_ok = php_ok and php_verify(pings[0][0], pings[0][1] + b" ") == "invalid"
    print(f"{'ok' if php_ok else 'FAILED'}: the guide's PHP signature check on {len(pings)} deliveries")
    return ok and php_ok


def main() -> int:
    base, key, admin_token = sys.argv[1], sys.argv[2], sys.argv[3]
    guide = urllib.request.urlopen(f"{base}/guide.md").read().decode()
    hook_url, hook_bodies = start_receiver()
    blocks = {title: code.replace(EXAMPLE_BASE, base).replace(EXAMPLE_KEY, key).replace(EXAMPLE_HOOK, hook_url)
              for title, code in examples(guide).items()}
    node = "Node.js 18+（fetch + ReadableStream）"
    monitors = "curl：定时复检与 webhook"
    assert {"curl", monitors, "Python（httpx，异步，流式 SSE）", node} <= blocks.keys(), blocks.keys()
    results = [
        run("curl", ["bash", "-euo", "pipefail"], blocks["curl"],
            ["job: ", "event: result", "event: done", '"status":"done"',
             "item_id,url,provider,state", '"results":[{"item_id":1']),
        run("curl monitors and webhooks", ["bash", "-euo", "pipefail"], blocks[monitors],
            ["webhook: wh_", "secret: whsec_", "monitor: mon_", '"state":"valid"', '"event":"ping"',
             '"status":"delivered"']),
        run("Python", [sys.executable, "-"], blocks["Python（httpx，异步，流式 SSE）"],
            ["job ", "quark valid all_checks_passed", "done {"]),
        run("Node.js", ["node", "-"], blocks[node],
            ["job ", "quark valid all_checks_passed", "baidu valid all_checks_passed", "done {"]),
    ]
    results.append(signature_example(guide, hook_bodies))
    results.append(openapi_examples(base, key, admin_token))
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
