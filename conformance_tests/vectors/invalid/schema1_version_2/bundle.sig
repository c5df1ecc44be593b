Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 049b77a0a88e49b58364faf6ac8128c948817df32a5786e36fae186d7b2cb51a
Signed-At: 2026-01-02T03:04:06+00:00
Signature: AVj4dEt7XvrHtu3WayK8gqEOSc5vSW6BtHgUcxVPMeKxWzrzc/KhoKhC6bRIgVgzYOMoVaBBeQ+Cg+Tcux9AAw==
