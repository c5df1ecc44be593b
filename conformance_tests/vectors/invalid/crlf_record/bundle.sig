Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: cb65f7cf9d32ec5b6645775060aba54a0468869635677db560edf3a7e2b1c5ee
Signed-At: 2026-01-02T03:04:06+00:00
Signature: QuZIAnQbnS1s4IDrsOc9GsiTf3wwDeH2i9KVkVuh41XZFZEam90nJssAqUxPfaONVPUpmdJ8ZB9ztIj6uOrZCA==
