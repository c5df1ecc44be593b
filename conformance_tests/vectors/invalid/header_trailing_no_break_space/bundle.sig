Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: eb2d934d624f8c59b1745e8c73eb7d0b4962880f866e3a267e403f34f80362fe
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 3nNe9q+U5U/t+admXuONUppgmmaxQq3Uy7hkpWfWTjOe8VI9ewa6HyaLpEPoMrT4lU3kf+prrK1QG+QESnAjDg==
