Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: d755f79b952319bc385f7a13ca3e2cfdac165f6817f9f1dcde08e9e80b99f138
Signed-At: 2026-01-02T03:04:06+00:00
Signature: VqchCjLNPIzEcFJuezRB4JbxVgkOHI/qkwe+ZqF54FOx55aXFnAqECxd30uEOJl8bXZR7nOutQtmIA9nnzgdCA==
