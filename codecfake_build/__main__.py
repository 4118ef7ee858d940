import sys

from codecfake_build.cli import main

sys.exit(main())
