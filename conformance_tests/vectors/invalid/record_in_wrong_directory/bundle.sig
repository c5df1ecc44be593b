Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 3f885e1d0d6619f57ea1970d48404fbcfa7a3185ecf2347447ac447ecb64367f
Signed-At: 2026-01-02T03:04:06+00:00
Signature: rBZU0UN66u/Mlxg4y3AzS0bO2ZxjPRknsQ8Xd4NzXZRMZ9rONT8+1fTWp0mhLqsL0xhHgS1aw2rZlM/jLk4qBA==
