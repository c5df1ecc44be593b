"""Operations: the root ``wb`` command and what spans components (demo, backup, doctor,
bundle and key commands). The top floor: it imports node, hub and conformance_tests."""
