from mesteri.cli import main

main()
