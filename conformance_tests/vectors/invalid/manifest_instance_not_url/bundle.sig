Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: e720b2d0e7eeebbbc0217df7df36f3d10f2573645dcc142823d76a1dd773e5af
Signed-At: 2026-01-02T03:04:06+00:00
Signature: Y+7qprgvkprlvLgsAeOU4E0QRXapoIj3LdyfW6rQK9H+gSHVlTVVHzBC28FwPZU/Bar/iq0ak7KwKtr68vtsAQ==
