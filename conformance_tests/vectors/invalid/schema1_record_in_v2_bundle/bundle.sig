Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 6d50f00c66715238caa3c5926f3519140f04166c7e441ddae9eee22975112da2
Signed-At: 2026-01-02T03:04:06+00:00
Signature: s7PysvKT4iw01holTCi78VTkFB4wJKTTNUw7ee2eEF0w7sO8/QLLh4xmwj8BjGj2YeETFpCeZyns455n4328CA==
