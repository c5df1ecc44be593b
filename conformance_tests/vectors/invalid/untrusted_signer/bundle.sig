Signature-Version: 1
Key-ID: ce01ae1be3331f58
Public-Key: vC3fJvf45y6zR6FXBhFH29bBt8CwxUQ3B+GId8EUSQY=
Manifest-Digest: 375efeffeed3c73252d8aebd82b499126b39879db961542dbf96250c41347f3c
Signed-At: 2026-01-02T03:04:06+00:00
Signature: NKYl9dFPEVuWDk4wiwd0qFRhXB2/JzgMj03VcurxO4TRSfXxu3GdtAm71vXjT6O/aFkWOeg+loFXiyXGst1xCQ==
