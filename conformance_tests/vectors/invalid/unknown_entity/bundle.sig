Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 27b0338a9be2a694e85b3f8b2c6cbd9c3007ed3a3afa0597a6674d7b871bf609
Signed-At: 2026-01-02T03:04:06+00:00
Signature: MEKgRdiAja2xv7THywWuZYljYPekfI917vfQ5sUpUJUFMuJomMHm97mmkp/2gKjGvEAvpni8IfC4cWpzdP40Aw==
