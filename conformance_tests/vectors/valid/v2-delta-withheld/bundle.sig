Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: ae0b6c4c419b9c38dad95a85a47596284858b4b9178a3cf911a4e3954f074b0f
Signed-At: 2026-01-02T03:04:06+00:00
Signature: r1iKChKWVNAGbwwh+M9xMj7RNMW9emb0rx+Md8qCb9MFlYvLyX96Fpfihp925Ol5qeB/tOafEGF+9nCwCLkNCA==
