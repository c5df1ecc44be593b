Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: e9fa2bbbe1086e15c3be4330ca66554567db5320c242268707c7ecbcbe390dd5
Signed-At: 2026-01-02T03:04:06+00:00
Signature: i6DFETeUXb8QPoV5SyluekSUB1//W5TE1mbHJiSjLzjAxiiP4+pBwggDnRAzFZQEySI9I/LFSbzmwdrIY7LZAw==
