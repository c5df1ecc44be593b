Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 3a7db1b78ef7a826705a02ce39f7b1325ebf8aa2b949c23a3112282d893e6c24
Signed-At: 2026-01-02T03:04:06+00:00
Signature: xx8WxlK/iEIUbGNq8JSoRs6snry7sYkSF0rJdjfNrR/jovwWE7Ia8x7O5tBe0J1+Z5020nFpMCZ9zoeZalUIBw==
