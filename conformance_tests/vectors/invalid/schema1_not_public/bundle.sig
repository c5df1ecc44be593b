Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 843dd3a07129bba105831e9e478659b80975480a38ad26cd4ca3e3b6987d37f5
Signed-At: 2026-01-02T03:04:06+00:00
Signature: s6m6IIfVfFbt0h/DPvFXNp/JeUU34814coU4cyPfqMzgrr7min0rCwumbUNWO+zs+Wvox3WSaKTBs+AOthURBQ==
