"""Parts of the paper venue (`connectors.paper_venue.PaperVenue`): orders, cash, matching."""
