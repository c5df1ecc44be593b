Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: ecc384e0666168b22a7d846d66ec14be1156b725d037108cce30e2f964d7d690
Signed-At: 2026-01-02T03:04:06+00:00
Signature: d818l5XZ4MefipZ4OwBsBkzV5oQzddHg399A68YWfBLS1c5AW2rVOXr0CCIi8Rw5/TmxbhJzqAso0e7ztYygDQ==
