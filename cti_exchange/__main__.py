from cti_exchange.cli.app import main

main()
