Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 7abdad7a7a682066f0ce0c940471afe49a7580e4b52b61280f1aaf550ef08d0f
Signed-At: 2026-01-02T03:04:06+00:00
Signature: xMsPiepEI8ZvH6gY7xeIEEl3zAJ8hnPDh/v6Nj0YoN+oXR9WWztrp06y02JnwyBSuuBvRSXWJp+nlvaJwUn0Dg==
