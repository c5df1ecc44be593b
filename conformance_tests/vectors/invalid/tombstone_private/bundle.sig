Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 576767c5f82aa4a58dfd43c9299349051255e218f466d1ca682278ec5ce03ded
Signed-At: 2026-01-02T03:04:06+00:00
Signature: o5WyjcZFzwtXmZdzdEJLMLoCBCxGdpIVH8IPTgQ6T0USEIa7e8o0l5EvbPuflDGR4aRcmTbp5w5vVKFQZjygCA==
