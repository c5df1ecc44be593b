Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 6fdf4c9c40a4299e32bdca4900872e53fccf2b6dc1dd5f77f93558399ccd4c23
Signed-At: 2026-01-02T03:04:06+00:00
Signature: Ig3FKhbWrrVsALHzZyHfOtEi01sXmWGZIB/71ahN2vHyoYlHxZ4pZUb1w53lV0QPywRIR4M7MuZ+0ufxyOOWDA==
