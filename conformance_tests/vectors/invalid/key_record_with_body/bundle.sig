Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: d555b713f892962a097cd7a634037e4a06db0904c93e1d96b277163eb9bc75dc
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 5detcINupzxePOCG0oSrlUPv0bps83C5S6QrR7aFADbbZVFqjqTHUFVZYMrW++ZVOZgGryyM7KYVR/4pAFtsCg==
