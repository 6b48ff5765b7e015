from syncgate.cli import main

main()
