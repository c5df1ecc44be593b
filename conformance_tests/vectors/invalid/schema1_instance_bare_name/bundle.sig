Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: aa067054abb22f42f59f6e1126e4da813e182546295ca76296e1a84a17d6ff6e
Signed-At: 2026-01-02T03:04:06+00:00
Signature: GGyWljANADE6OIDlWnhJqrqRlb8p8boEjA+FsLqi/dP+kPdqf89aPuujnByB/NlGFAEB6Aeasucmol0O/IYyBQ==
