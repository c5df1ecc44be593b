Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: ff1c09309ce265d53320950ea7203e9739f7321af38f864f21b44178d6b875c7
Signed-At: 2026-01-02T03:04:06+00:00
Signature: Opc+ob6QddgnMZikTP8oQbc/ww8jWCxpynDCCU5NIr/KUAUbfcgWYi8GDTTA1u4JFC6sORPOSY4JLjmqY9NqAg==
