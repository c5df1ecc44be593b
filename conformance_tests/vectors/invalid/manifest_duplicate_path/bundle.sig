Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 75c35fbbce5f8eaf242f1c8113938283ff5c2c35168b6dc1426971f8baf7fe4f
Signed-At: 2026-01-02T03:04:06+00:00
Signature: +POfe14OJuhy8cz8MrrxRpD6gL2nsR5+fLcWdOrV4Br7wcARpBUVeik/+SQi3gFZ8z/2p0p2ASuYWNuwHTx2AQ==
