Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: df1d59e33cda1f6661b06200873ddbbb791a5822661dcf0f805243bc5c5c3fda
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 0N/HJtyKtwWHkIzVSsAz+1nTqbSfJ1sfNwmm6KMFFuC8+BX9xfYkwDwDYeS/4+dLxIP9zWyzYq3bTfcqAn0+CQ==
