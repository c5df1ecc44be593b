Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 375efeffeed3c73252d8aebd82b499126b39879db961542dbf96250c41347f3c
Signed-At: 2026-01-02T03:04:06+00:00
Signature: q1C8HXyJPCIB1Y8TgCemq8+GLvWPN1K7gHgL2Ifen3EptZS9LypXOSW35YZKd/9Xq+2MfZVB0ssN64WYBZ2XCQ==
Signed-By: someone
