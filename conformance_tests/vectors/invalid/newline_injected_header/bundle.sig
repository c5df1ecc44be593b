Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 281737aa0ba43ad979aaf394c9d5f25b5466c4d114ce0e58bbc6fe1c03013877
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 7BadxwMkS1o2jX1s44Tf1qKiZ3DMroLlRagRgy8RwIEi+W7SPBma9mzZLGdVpdOo4A9zR8QqpjfDVSKBbUM+Ag==
