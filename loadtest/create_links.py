#!/usr/bin/env python3
"""Creates N short links through POST /api/v1/links/batch and writes their codes (one per line)
and, optionally, an nginx `map` of them. Codes equal but for case are written once: nginx's map
compares strings ignoring case, so both servers are asked only for codes unique without case.

Usage: create_links.py PORT KEY N CODES_FILE [MAP_FILE]"""
import http.client
import json
import sys

port, key, total, codes_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
map_path = sys.argv[5] if len(sys.argv) > 5 else None
conn = http.client.HTTPConnection("127.0.0.1", port)
codes, maps, seen = [], [], set()
for start in range(0, total, 1000):
    items = [{"url": f"https://example.com/target/{i}?ref=load"} for i in range(start, min(total, start + 1000))]
    conn.request("POST", "/api/v1/links/batch", json.dumps({"items": items}),
                 {"X-API-Key": key, "Content-Type": "application/json"})
    data = json.loads(conn.getresponse().read())["data"]
    assert data["failed"] == 0, data
    for item in data["items"]:
        if item["data"]["code"].lower() in seen:
            continue
        seen.add(item["data"]["code"].lower())
        codes.append(item["data"]["code"])
        maps.append(f'    /{item["data"]["code"]} "{item["data"]["url"]}";')
open(codes_path, "w").write("\n".join(codes) + "\n")
if map_path:
    open(map_path, "w").write("\n".join(maps) + "\n")
