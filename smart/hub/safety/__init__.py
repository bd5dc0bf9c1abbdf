"""SafetyCentral (Floor hub): the stations' safety incidents, the safety lead's reports, trends."""
