Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: d5ec5d0fe4255a5f256bdcac760d7bc130397e7541b5fbdbd1103719b956c62d
Signed-At: 2026-01-02T03:04:06+00:00
Signature: iQ6IjXu0ie39dAJU/vjnWUAyV5L+haud0WVDvcIx4mtpnLv/UrQyXpo1ofO1mAOFMlZM8eZ6YY6TgalkzVXgAA==
