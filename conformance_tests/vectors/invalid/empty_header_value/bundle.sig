Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 07a69340cb8087518b4d1793f3dd32a0ad68b143daff298cb542f20a57c9907f
Signed-At: 2026-01-02T03:04:06+00:00
Signature: AajIwa+CaH0OOM0ME0Q+3mbfxMph2ky1O70AXuEuOcFkQybcinKW+G5dYK5NaniB4ajxqniBuzoM3tdTpiloAQ==
