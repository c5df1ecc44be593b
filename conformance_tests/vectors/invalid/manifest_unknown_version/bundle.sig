Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 866545eaa39e5eb354837bccb9b9c944a61d4153a713cc61711834736e6d118f
Signed-At: 2026-01-02T03:04:06+00:00
Signature: fKvWTR7dzNSFBBYQJ2Hns6pWZIM9MyiQi9AcnD5CMs1PeBeAsGY+dwn2nl5JUZQAtv4vCseBo3QgvvV950WYBQ==
