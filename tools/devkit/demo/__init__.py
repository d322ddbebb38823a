"""``printfarm-demo``: the whole pipeline on one machine, fed by a simulated regional fleet."""
