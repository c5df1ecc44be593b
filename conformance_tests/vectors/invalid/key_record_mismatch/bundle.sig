Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: a52c82b920c89b48bc005768c054d01b2ecd0c802d6f1e5b334e16899ba62c67
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 1MRMsI2zlD9PIGP2QtQy5KctC0N5pLsZhZxs7g7WGjJnq2pUMbiszGqZC8r8xwL1wIy0ee4cPec4/6qhhFKaCQ==
