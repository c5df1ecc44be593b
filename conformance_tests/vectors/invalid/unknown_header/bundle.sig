Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 97ba633fededc81325ba219f92d1b25520f3220de982db2001ffea90c173a1d1
Signed-At: 2026-01-02T03:04:06+00:00
Signature: WEwUHA6WJijzU4mfEBnv6nY52U951bpa5r7GEdgyR9WrQR/tw8wQSZRsZz6uI8deIL3bY+c93k1I1OGg/+8qAg==
