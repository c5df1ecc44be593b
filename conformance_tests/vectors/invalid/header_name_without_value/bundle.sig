Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 748cef61ed7d44ea71b41cfd8345782b77f888ac38fc7a58f9bbadf8f0280b7e
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 0BfoZls9zN74jMJJ+VAWUUSJGocSuYtybYT+vx/xP2f4Kdg/Zc82zOo7g/+j/VQz6dOk84+OWrqk3hK+kl7tAg==
