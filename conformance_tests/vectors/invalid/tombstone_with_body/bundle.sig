Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 2e30932577007b573b4bea14a009de722f49787d1bf755d3581e4ea7c1b93fc8
Signed-At: 2026-01-02T03:04:06+00:00
Signature: Yj0wy+8ChBncgSHNmfYhtRtTaP+ucoEdJAKdEJBle527x+gTx12VWu+SI8ihdGPOTHWsxJmqZOKhYLsYt3G7Bg==
