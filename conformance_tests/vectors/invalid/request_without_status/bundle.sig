Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: f18262f978d337e9f245c4f3ba99f0ffc847d9051ecbc8ad458dc66b2bfa6efb
Signed-At: 2026-01-02T03:04:06+00:00
Signature: Rc3rMR+SYK+q6Ke+ieGZ3GE3Q9Jol1nzua0zgblGFxQNvp8BZyC4pw1dTwYhtxJXZBM82RtC77jFMqqWAraUBw==
