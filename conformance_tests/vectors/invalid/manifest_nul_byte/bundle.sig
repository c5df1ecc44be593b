Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 235492c707b714301e18e53a533d8be93aded216265716003065881e638a158c
Signed-At: 2026-01-02T03:04:06+00:00
Signature: KRsjLnTPxhERfYxl2AKxj3167JZb6qbCp4fxnlu6miGFWmguk4O6UEDujj4Us09ZBEj+blsY7OtIOPs1VqV7Bw==
