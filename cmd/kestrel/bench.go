package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure the sequencer against go-ethereum on the same transactions",
		Action: func(c *cli.Context) error {
			return errors.New("not built yet")
		},
	}
}
