import sys

from puppetry.cli import main

sys.exit(main())
