from ailb.cli import main

raise SystemExit(main())
