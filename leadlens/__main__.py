from leadlens.cli import main

main()
