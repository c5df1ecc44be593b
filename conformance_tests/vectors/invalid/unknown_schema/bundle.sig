Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 71af405754c34d10a173eb23041ee4d53e31905592929cae82221b707df2a5cc
Signed-At: 2026-01-02T03:04:06+00:00
Signature: HRy9aJEb2/taG8+Z53+rJbWHkHPQZsGNDYdJ5UnNCGDelE7N5STIO4Dh+1XWeE48m0bznfXwguZ0Ock9nnE5CA==
