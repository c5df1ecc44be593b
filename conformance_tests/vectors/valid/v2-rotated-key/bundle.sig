Signature-Version: 1
Key-ID: ce01ae1be3331f58
Public-Key: vC3fJvf45y6zR6FXBhFH29bBt8CwxUQ3B+GId8EUSQY=
Manifest-Digest: 2d246980ed7f731e591d959090d64963454c14198e769ddaa0cda0243cae9edf
Signed-At: 2026-01-02T03:04:06+00:00
Signature: cm6ibtu7pqhlyq+5UOH0kSMXMCpDZh40q5wZBdHTbAu2ujmgdHzIEy8ViRwYiF7wZRpIotDchtdZ7L/ipNN0Dg==
