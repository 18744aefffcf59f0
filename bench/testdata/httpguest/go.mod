module httpguest

go 1.24

require github.com/airlockhq/airlock/sdk v0.0.0

replace github.com/airlockhq/airlock/sdk => ../../../sdk
