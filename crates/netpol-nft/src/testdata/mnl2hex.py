#!/usr/bin/env python3
"""nft --debug=mnl output (stdin) -> one line per message: 'TYPE HEX' of everything after nlmsghdr."""
import re, sys, struct
ansi = re.compile(r'\x1b\[[0-9;]*m')
msgs = []
cur = None
state = None
for raw in sys.stdin:
    line = ansi.sub('', raw.rstrip('\n'))
    m = re.match(r'^\|\s+(\d{10})\s+\|\s+\| message length', line)
    if m:
        cur = {'type': None, 'body': bytearray()}; msgs.append(cur); continue
    m = re.match(r'^\| (\d{5}) \| [A-Z-]{4} \|', line)
    if m and cur is not None and cur['type'] is None:
        cur['type'] = int(m.group(1)); continue
    m = re.match(r'^\|(\d{5})\|([NB-]{2})\|(\d{5})\|', line)
    if m:
        ln, fl, ty = int(m.group(1)), m.group(2), int(m.group(3))
        if 'N' in fl: ty |= 0x8000
        if 'B' in fl: ty |= 0x4000
        cur['body'] += struct.pack('<HH', ln, ty); continue
    m = re.match(r'^\| ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2})  \|', line)
    if m and cur is not None:
        cur['body'] += bytes(int(x, 16) for x in m.groups()); continue
for m in msgs:
    print(m['type'], m['body'].hex())
