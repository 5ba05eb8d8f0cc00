"""The paper venue: a simulated exchange on the exchange clock (`venue.PaperVenue`), its
orders, cash and matching, the market that drives it (`market.PaperMarket`) and its adapter to
the executor (`adapter.PaperVenueAdapter`)."""
